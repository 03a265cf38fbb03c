performer serve --hooks examples.my_hooks:MyHooks    # MODULE:NAME, an instance or a class
